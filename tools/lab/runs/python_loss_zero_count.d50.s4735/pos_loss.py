"""A balanced binary cross-entropy written as a Caffe Python layer: the loss is summed over the
batch and divided by the number of positive labels in it, so a batch without one divides by 0."""

import caffe
import numpy as np


class PositiveNormalizedLoss(caffe.Layer):
    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("needs scores and labels")

    def reshape(self, bottom, top):
        top[0].reshape(1)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(-1)
        y = bottom[1].data.reshape(-1)
        p = 1.0 / (1.0 + np.exp(-x))
        self.p, self.y = p, y
        self.npos = np.float32((y > 0.5).sum())
        ce = -(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7)).sum()
        top[0].data[0] = np.float32(ce) / self.npos

    def backward(self, top, propagate_down, bottom):
        grad = (self.p - self.y) / self.npos * top[0].diff[0]
        bottom[0].diff[...] = grad.reshape(bottom[0].diff.shape)
