"""What the report says and draws: words, markdown and HTML, figures, DVC plot tables."""
