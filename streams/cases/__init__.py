"""Cases: the closed loop (state by case id), duplicate merging and hot spots (state by district + label)."""
