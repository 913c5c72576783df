"""Where images come from: synthetic probe images, COCO-format datasets, and the generated demo dataset."""
