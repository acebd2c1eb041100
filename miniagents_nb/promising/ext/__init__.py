"""Extensions of the promise engine that are not promises themselves (immutable models)."""
