"""Class Management Service: the source of truth for classes, students and courses."""
