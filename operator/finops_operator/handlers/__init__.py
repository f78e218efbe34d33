"""kopf handlers: the only package that imports kopf. Thin: read the object, call ``finops_operator.api``.

Loaded with ``finops run`` or ``kopf run -m finops_operator.handlers.load``.
"""
