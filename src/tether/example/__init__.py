"""The example project: a loan-default classifier on generated data."""
