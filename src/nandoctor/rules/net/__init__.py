"""Net rules (NAN1xx): checks of one Caffe net in every phase it can be built in."""
