"""Running plan steps on minions through Salt, and the shapes of their results."""
