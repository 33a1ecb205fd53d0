"""The make commands that read results (results, compare, clean); no stage imports them."""
