"""Part Two of the report: the chain rule and the layers written from scratch."""
