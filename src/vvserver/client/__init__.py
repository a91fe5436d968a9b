"""Tools that act as a client of the server: the headless participant, its peer and clips, and the
stock aiortc relay the benchmark compares against."""
