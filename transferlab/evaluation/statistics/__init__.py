"""Statistics: verdicts and their families, the recommendation, the backbones' ranking."""
