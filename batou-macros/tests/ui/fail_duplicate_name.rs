// Two components with one name in one crate: a compile error at both.
mod one {
    use batou::prelude::*;
    #[component(name = "dup")]
    pub struct First {}
    impl Component for First {}
}

mod two {
    use batou::prelude::*;
    #[component(name = "dup")]
    pub struct Second {}
    impl Component for Second {}
}

fn main() {}
