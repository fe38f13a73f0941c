"""Chapter 5 of *Deep Learning with PyTorch*: learning `t_c = w * t_u + b` from a thermometer's readings."""

from thermometer.data import TemperatureDataModule
from thermometer.nets import MLP, Line, Polynomial
from thermometer.system import Normalize, Thermometer

__all__ = ["MLP", "Line", "Normalize", "Polynomial", "TemperatureDataModule", "Thermometer"]
