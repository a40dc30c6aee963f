"""The reporter's side of the core: the conversation state and the submission."""
