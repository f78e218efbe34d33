"""Which files of the GitOps repository deploy each live workload in *this* cluster.

* :mod:`.records`: the GitOps controllers' own records (Argo CD Applications, Flux
  Kustomizations and HelmReleases, as the API returns them) as typed
  :class:`~.records.ControllerRecord`, and how live objects are joined to them.
* :mod:`.deploymap`: the decision, in order (controller record, the policy's
  ``spec.git.paths`` / a per-cluster entry point, the ``finops.dev/source``
  annotation), over a :class:`~.deploymap.Catalogue` of the repository's entry points.

Pure: no kubernetes client, no file reads, nothing from ``actuation`` (the
catalogue is built by :meth:`finops_operator.actuation.locate.RepoIndex.catalogue`).
"""
