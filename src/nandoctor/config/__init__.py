"""Caffe configs: prototxt parsing, schema, nets, shapes, solvers and learning-rate schedules."""
