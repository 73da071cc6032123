// scission: which layers where. Each verb lives in cmd_<verb>.cpp and calls one library function.
#include <iostream>

#include "cli/common.h"
#include "common/error.h"

int main(int argc, char** argv) {
  using namespace scission::cli;
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
