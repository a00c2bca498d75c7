"""Stand-ins of the production inputs (tokenizer, data, models), made locally in their shape."""
