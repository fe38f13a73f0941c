"""Chapter 5 of *Deep Learning with PyTorch*: learning `t_c = w * t_u + b` from a thermometer's readings."""

from thermometer.data import TemperatureDataModule
from thermometer.model import LitThermometer, Thermometer, least_squares

__all__ = ["LitThermometer", "TemperatureDataModule", "Thermometer", "least_squares"]
