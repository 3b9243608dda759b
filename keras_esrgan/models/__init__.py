"""Keras models: the generators (`SRGenerator` and its subclasses `RRDBNet`, `SRVGGNetCompact`)
and the two discriminators."""

from keras_esrgan.models.discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.models.layers import NearestUpsample2x, PixelUnshuffle
from keras_esrgan.models.rrdbnet import RRDB, RRDBNet, ResidualDenseBlock
from keras_esrgan.models.srvgg import SRVGGNetCompact

__all__ = [
    "NearestUpsample2x",
    "PixelUnshuffle",
    "RRDB",
    "RRDBNet",
    "ResidualDenseBlock",
    "SRGenerator",
    "SRVGGNetCompact",
    "UNetDiscriminatorSN",
    "VGGStyleDiscriminator",
]
