"""Logs as data: a pandas DataFrame of logged values, and exporters to TensorBoard, MLflow, csv/json/parquet.

Each exporter's own dependency is optional and imported only by the module that writes its format.
"""

from .frame import dataframe

__all__ = ["dataframe"]
