"""Reading the tables the operator CLI prints."""


def table_rows(output: str) -> list[list[str]]:
    """The cells of the output's table rows, in order."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if "│" in line]


def table_row(output: str, first: str, *cells: str) -> list[str]:
    """The cells of the one table row whose first cell is `first` and which holds every one of `cells`."""
    (row,) = [row for row in table_rows(output) if row and row[0] == first and all(cell in row for cell in cells)]
    return row
