"""Code execution: jobs, taskiq tasks and the sandbox."""
