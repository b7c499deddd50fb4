"""Every check nandoctor makes, one small module per rule (or per close family of rules).

Modules below this package are imported by ``nandoctor.core.registry.load_rules``;
a rule registers itself with the ``@register`` decorator. Codes:
NAN0xx config files (syntax/schema), NAN1xx nets, NAN2xx solvers and lr,
NAN3xx logs, NAN4xx data sets, NAN5xx debug_info localisation, NAN6xx PyTorch.
"""
