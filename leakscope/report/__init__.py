"""The documented import path of the HTML report: :mod:`leakscope.report.html`."""
