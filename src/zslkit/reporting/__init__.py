"""Tables, published numbers and plots for runs."""
