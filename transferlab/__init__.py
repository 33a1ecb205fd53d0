"""transferlab: reproducible transfer-learning experiments (the library under stages/)."""
