"""NAN0xx: config files checked against caffe.proto (see ``nandoctor.config.validate``)."""
