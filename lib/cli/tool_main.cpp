// tool_main.cpp -- parse, initialise the process once, run, map errors to exit codes.
#include "cli/tool_main.hpp"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <clocale>
#include <cstdio>
#include <random>
#include <set>
#include <sstream>

#include "cli/common_options.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/signals.hpp"
#include "core/terminal.hpp"
#include "h5/handle.hpp"
#include "h5/zstd_filter.hpp"
#include "runtime/runtime.hpp"

namespace treerpo::cli {
namespace {
bool wants_verbose_version(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--verbose" ||
        (a.size() >= 2 && a[0] == '-' && a[1] == 'v' && a.find_first_not_of('v', 1) == std::string::npos))
      return true;
  }
  return false;
}

// The options set on the command line, in a config file or by environment variables, as a
// config file that replays the run (defaults are those of the recorded version). Test hooks
// and the output's own name are left out.
std::string given_options(const CLI::App& app) {
  std::string out;
  std::istringstream lines(app.config_to_str(/*default_also=*/false, /*write_description=*/false));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("fake-", 0) == 0 || line.rfind("output=", 0) == 0 || line.rfind("force=", 0) == 0 ||
        line.rfind("config=", 0) == 0)
      continue;
    out += line + "\n";
  }
  return out;
}

// The long names of the options the user set, from CLI11's counts: on the command line or in
// a config file. A value that came from the option's environment variable (CLI11 reads it only
// when neither set the option) does not count: TREERPO_SEED in a job's environment does not
// make --seed a refused option of a tool that has no use for it.
bool from_environment(const CLI::Option& opt) {
  const std::string& name = opt.get_envname();
  const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
  return value != nullptr && opt.results() == std::vector<std::string>{value};
}

void collect_given(const CLI::App& app, std::set<std::string>& names) {
  for (const CLI::Option* opt : app.get_options())
    if (opt->count() > 0 && !from_environment(*opt)) {
      for (const auto& name : opt->get_lnames()) names.insert("--" + name);
      if (opt->get_lnames().empty() && opt->get_positional()) names.insert(opt->get_single_name());  // "input"
    }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) collect_given(*sub, names);
}

Given given_set(const CLI::App& app) {
  std::set<std::string> names;
  collect_given(app, names);
  return Given(std::move(names));
}

Context make_context(const ToolSpec& spec, const CommonValues& v, CLI::App& app, int argc,
                     char** argv) {
  Context ctx;
  ctx.tool = spec.name;
  ctx.argv.assign(argv, argv + argc);
  ctx.force = v.force;
  ctx.quiet = v.quiet;
  ctx.json = v.json;
  const bool stderr_tty = terminal::is_terminal(STDERR_FILENO);
  ctx.progress = spec.common.progress && !v.quiet && !v.progress_off && (v.progress_on || stderr_tty);
  ctx.progress_tty = stderr_tty;

  if (spec.common.threads) {
    ctx.threads = runtime::resolve_threads(v.threads);
    runtime::sleep_idle_pools(ctx.threads, argv);  // may re-execute this program (returns otherwise)
    const auto plan = runtime::apply_threads(ctx.threads);
    log::debug("threads: " + std::to_string(plan.total) + " (BLAS " + std::to_string(plan.blas) + ", libtorch " +
               std::to_string(plan.torch) + ")");
  }
  if (spec.common.seed) {
    // Resolved once, here; a tool whose seed comes from its input takes it with adopt_seed.
    ctx.seed_given = v.seed.has_value();
    ctx.seed_rule = spec.seed_rule ? spec.seed_rule(app) : SeedRule::random;
    if (v.seed) ctx.seed = *v.seed;
    else if (ctx.seed_rule == SeedRule::random) ctx.seed = random_seed();
    else ctx.seed = 0;
    if (v.seed || ctx.seed_rule != SeedRule::input) log::info("seed: " + std::to_string(ctx.seed));
  }
  if (spec.common.device) {
    ctx.device = runtime::resolve_device(v.device);
    if (spec.device_rule) ctx.device = spec.device_rule(ctx.device);
    log::debug("device: " + ctx.device);
  }
  if (spec.common.shard) {
    if (!v.shard.empty()) ctx.shard = parse_shard(v.shard, "--shard");
    else if (auto s = shard_from_slurm()) ctx.shard = *s;
  }
  ctx.resolved_options = given_options(app);
  ctx.given = given_set(app);
  return ctx;
}
}  // namespace

std::function<int(Context&)> build_app(CLI::App& app, const ToolSpec& spec, std::string& output,
                                       CommonValues& values) {
  app.name(spec.name);
  app.description(spec.summary);
  if (!spec.footer.empty()) app.footer(spec.footer);
  add_common_options(app, spec.common, values, output);
  return spec.setup(app, output);
}

int tool_main(int argc, char** argv, const ToolSpec& spec) {
  log::set_program(spec.name);
  runtime::keep_freed_memory();
  CLI::App app;
  std::string output = "-";
  CommonValues values;
  std::function<int(Context&)> run;
  try {
    run = build_app(app, spec, output, values);
  } catch (const std::exception& e) {
    log::error(std::string("internal error while defining options: ") + e.what());
    return to_int(ExitCode::software);
  }
  const bool verbose = wants_verbose_version(argc, argv);
  app.set_version_flag("--version", [&] { return runtime::version_report(spec.name, verbose); },
                       "Print version, build and library information (more with -v) and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help / --version: stdout, exit 0
  } catch (const CLI::FileError& e) {
    log::error(e.what());
    return to_int(ExitCode::no_input);
  } catch (const CLI::ConfigError& e) {
    log::error(std::string("configuration file: ") + e.what());
    return to_int(ExitCode::config);
  } catch (const CLI::ParseError& e) {
    log::error(std::string(e.what()) + " (run with --help for more information)");
    return to_int(ExitCode::usage);  // never CLI11's own 100+ codes
  }

  if (values.fake_stdin_tty) terminal::set_fake_terminal(STDIN_FILENO, true);
  if (values.fake_stdout_tty) terminal::set_fake_terminal(STDOUT_FILENO, true);
  if (values.fake_stderr_tty) terminal::set_fake_terminal(STDERR_FILENO, true);
  log::set_level(values.quiet ? log::Level::error
                              : static_cast<log::Level>(std::min(1 + values.verbosity, 4)));

  int rc = 0;
  try {
    std::setlocale(LC_NUMERIC, "C");  // numbers in JSON and logs never depend on the locale
    signals::install();
    h5::silence_errors();
    h5::register_zstd_filter();
    Context ctx = make_context(spec, values, app, argc, argv);
    if (log::enabled(log::Level::debug)) log::debug(runtime::version_report(spec.name, true));
    rc = run(ctx);
  } catch (const ShowUsage&) {
    std::fputs(app.help().c_str(), stdout);
    rc = 0;
  } catch (const Interrupted& e) {
    log::error(e.what());
    rc = to_int(e.exit_code());
  } catch (const Error& e) {
    log::error(e.what());
    rc = to_int(e.exit_code());
  } catch (const std::bad_alloc&) {
    log::error("out of memory");
    rc = to_int(ExitCode::temp_failure);
  } catch (const std::exception& e) {
    std::string message;
    if (runtime::translate_torch_error(e, &rc, &message)) {
      log::error(message);
    } else {
      log::error(std::string("internal error: ") + e.what());
      rc = to_int(ExitCode::software);
    }
  }
  // Delayed write errors on stdout (full disk, closed pipe reader) surface here.
  const bool write_failed = std::ferror(stdout) != 0;  // an earlier flush failed (e.g. disk full)
  if ((std::fclose(stdout) != 0 || write_failed) && errno != EBADF && rc == 0) {
    log::error(with_errno("error closing standard output", errno));
    rc = to_int(ExitCode::io);
  }
  return rc;
}

}  // namespace treerpo::cli
