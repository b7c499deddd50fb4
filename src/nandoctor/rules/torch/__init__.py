"""NAN6xx: rules over a PyTorch guard's facts (``Facts.torch``, a TorchFacts).

They need ``torch`` facts, which only the PyTorch guard and its reproducer bundles
provide; on Caffe inputs the runner skips them, so they are listed and documented
(``nandoctor rules NAN6``) but never fire there.
"""
