"""Solver rules (NAN2xx): the learning-rate schedule as Caffe computes it, and the solver
type's parameters. Every rule reads ``facts.solver`` (a nandoctor.config.solver.Solver);
the lr horizon comes from ``facts.options["iters"]`` (a ``solver.step(n)`` run) or max_iter."""
