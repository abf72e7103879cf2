"""ffasora: report-to-video generation for fundus fluorescein angiography."""

__version__ = "0.1.0"
