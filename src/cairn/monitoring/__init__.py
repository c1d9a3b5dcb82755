"""Monitoring: a model's inputs and answers once it serves, against what it was trained
on — drift, data quality and, once labels come, performance."""
