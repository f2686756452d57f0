batou::components!(tick);

fn main() {}
