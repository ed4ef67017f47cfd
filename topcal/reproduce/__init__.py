"""The paper's studies end to end (``topcal reproduce``): scales, steps, figures and the report."""
