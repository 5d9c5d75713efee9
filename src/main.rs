fn main() -> std::process::ExitCode {
    portside::app::main()
}
