"""The Sweeps page's tabs, one module per kind of study."""
