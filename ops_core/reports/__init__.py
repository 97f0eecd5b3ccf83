"""Rendering of report notebooks (papermill → nbconvert HTML) under reports/."""
