"""The readings: a CSV read and checked in one place, split and served as whole-tensor batches."""

from thermometer.data.batches import Readings, RowBatches
from thermometer.data.module import TemperatureDataModule
from thermometer.data.readings import read_readings

__all__ = ["Readings", "RowBatches", "TemperatureDataModule", "read_readings"]
