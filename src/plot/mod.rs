//! Plots (filled in by the plot work).
