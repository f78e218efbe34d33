"""kopf handlers: the only package that imports kopf. Thin: read the object, call ``finops_operator.api``.

Loaded with ``finops run`` or ``kopf run -m finops_operator.handlers.load``.
"""
from ..permissions import Rule

PERMISSIONS = (   # what kopf itself does for the handlers in this package (see finops_operator.permissions)
    Rule("cluster", "finops.dev", "finopspolicies", ("list", "watch", "patch"),
         "handlers/policies.py: kopf watches policies and patches its progress annotations and finalizer"),
    Rule("cluster", "finops.dev", "finopspolicies/status", ("patch",),
         "handlers/policies.py validate/tick: patch.status (kopf writes it through the status subresource)"),
    Rule("cluster", "finops.dev", "budgets", ("list", "watch", "patch"),
         "handlers/budgets.py: kopf watches budgets and patches its progress annotations"),
    Rule("cluster", "finops.dev", "budgets/status", ("patch",), "handlers/budgets.py validate_budget: patch.status; api/budgetrun.py write_status"),
    Rule("cluster", "finops.dev", "notificationchannels", ("list", "watch", "patch"),
         "handlers/notifications.py: kopf watches channels (timers) and patches its progress annotations"),
    Rule("cluster", "finops.dev", "notificationchannels/status", ("patch",),
         "handlers/notifications.py validate_channel/deliver: patch.status (delivery statistics)"),
    Rule("cluster", "finops.dev", "notificationsubscriptions", ("list", "watch", "patch"),
         "handlers/notifications.py: kopf's index of subscriptions; validate_subscription's progress annotations"),
    Rule("cluster", "finops.dev", "notificationsubscriptions/status", ("patch",),
         "handlers/notifications.py validate_subscription: patch.status"),
    Rule("cluster", "finops.dev", "finopsreports", ("list", "watch", "patch"),
         "handlers/reports.py: kopf watches FinOpsReports (a timer each) and patches its progress annotations"),
    Rule("cluster", "finops.dev", "finopsreports/status", ("patch",),
         "handlers/reports.py validate_report/generate_report: patch.status (stored reports, headline)"),
    Rule("cluster", "finops.dev", "savingsopportunities", ("list", "watch"),
         "handlers/opportunities.py approved_opportunities: kopf's index lists and watches them"),
    Rule("cluster", "apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch"),
         "kopf: notices the CRDs it serves being added or removed"),
    Rule("cluster", "", "namespaces", ("list", "watch"),
         "kopf with --namespace (finops run --namespace X): follows the served namespaces"),
    Rule("cluster", "kopf.dev", "clusterkopfpeerings", ("list", "watch", "patch"),
         "handlers/runner.py --peering: kopf's keep-alives in the ClusterKopfPeering", when="peering.enabled"),
)
