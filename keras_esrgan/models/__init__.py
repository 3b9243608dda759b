"""Keras models: the RRDBNet and SRVGGNetCompact generators and the two discriminators."""

from keras_esrgan.models.discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from keras_esrgan.models.layers import NearestUpsample2x, PixelUnshuffle
from keras_esrgan.models.rrdbnet import RRDB, RRDBNet, ResidualDenseBlock
from keras_esrgan.models.srvgg import SRVGGNetCompact

__all__ = [
    "NearestUpsample2x",
    "PixelUnshuffle",
    "RRDB",
    "RRDBNet",
    "ResidualDenseBlock",
    "SRVGGNetCompact",
    "UNetDiscriminatorSN",
    "VGGStyleDiscriminator",
]
