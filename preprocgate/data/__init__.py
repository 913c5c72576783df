"""Where inputs come from: synthetic probe images and image files."""
