"""crmkit IDIC workflow plugin: Identify, Differentiate, Interact, Customize."""
