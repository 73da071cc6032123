// scission: which layers where. Each verb lives in cmd_<verb>.cpp and calls one library function.
#include <grpc/support/log.h>

#include <cstdlib>
#include <iostream>

#include "cli/common.h"
#include "common/error.h"

namespace {
// gRPC's own log lines (a refused TLS handshake, a port it could not bind) would break the
// one-line `error:` contract; the errors that matter reach the user through statuses instead.
// GRPC_VERBOSITY set by the user brings them back for debugging.
void DropGrpcLog(gpr_log_func_args*) {}
}  // namespace

int main(int argc, char** argv) {
  using namespace scission::cli;
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function(DropGrpcLog);
  CLI::App app{"Scission: split a DNN across device, edge and cloud, measured not guessed"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "scission 0.1.0");
  GlobalOptions global;
  RegisterModels(app, global);
  RegisterZoo(app, global);
  RegisterInspect(app, global);
  RegisterBenchmark(app, global);
  RegisterImportScission(app, global);
  RegisterImportRun(app, global);
  RegisterExport(app, global);
  RegisterNetwork(app, global);
  RegisterPredict(app, global);
  RegisterPlan(app, global);
  RegisterReport(app, global);
  RegisterWorker(app, global);
  RegisterProbe(app, global);
  RegisterFleet(app, global);
  RegisterRun(app, global);
  RegisterServe(app, global);
  RegisterLoadgen(app, global);
  RegisterDemo(app, global);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A first word that is no verb: say so, rather than CLI11's "A subcommand is required".
    if (argc > 1 && argv[1][0] != '-') {
      bool known = false;
      for (const auto* sub : app.get_subcommands({})) known = known || sub->get_name() == argv[1];
      if (!known) {
        std::cerr << "error: unknown verb '" << scission::OneLine(argv[1])
                  << "' (scission --help lists them)\n";
        return 2;
      }
    }
    std::cerr << "error: " << scission::OneLine(e.what()) << "\n";
    return 2;
  } catch (const scission::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "error: internal: " << scission::OneLine(e.what()) << "\n";
    return 1;
  }
  return 0;
}
