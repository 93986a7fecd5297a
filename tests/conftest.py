"""Test configuration: pytester drives the pytest plugin as a user would."""

pytest_plugins = ["pytester"]
