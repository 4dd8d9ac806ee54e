"""Part One of the report: the dataset, the CNN, training and speed."""
