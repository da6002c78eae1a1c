"""Reference datasets: upload (CSV or Parquet) -> object store -> a fitted, versioned profile."""
