"""Input data sets: LMDB, LevelDB, HDF5 and image lists, scanned for records that poison training."""
