// Monitoring mixin of whatsapp-exporter: the shipped alerting rules and Grafana dashboards,
// imported from alerts/ and dashboards/ at the root of the repository, not copied, so they
// cannot drift (tests/deploy_kubernetes.rs checks that this evaluates to exactly those
// files). Vendor the whole repository, not only this directory, for the imports to
// resolve:
//
//   jb install github.com/<owner>/whatsapp-exporter@main
//
// then, with kube-prometheus:
//
//   local addMixin = import 'kube-prometheus/lib/mixin.libsonnet';
//   local whatsapp = addMixin({
//     name: 'whatsapp-exporter',
//     dashboardFolder: 'WhatsApp',
//     mixin: import 'github.com/<owner>/whatsapp-exporter/deploy/mixin/mixin.libsonnet',
//   });
//
// whatsapp.prometheusRules is a PrometheusRule; add whatsapp.grafanaDashboards to
// values.grafana.folderDashboards.
//
// prometheusAlerts holds every group of alerts/whatsapp-exporter.rules.yml, in order: the
// alerts and the recording rules of the site thresholds (group whatsapp-alert-thresholds)
// they compare against. To change a threshold, override the `expr` of its recording rule
// in that group. The alert WhatsAppExporterDown expects the scrape job
// "whatsapp-exporter": the name of the Service in deploy/kubernetes/base/.
{
  prometheusAlerts+:: std.parseYaml(importstr '../../alerts/whatsapp-exporter.rules.yml'),

  // One entry per file of dashboards/, keyed by file name as Grafana provisioning and
  // kube-prometheus expect.
  grafanaDashboards+:: {
    'whatsapp-exporter.json': import '../../dashboards/whatsapp-exporter.json',
    'whatsapp-fleet-overview.json': import '../../dashboards/whatsapp-fleet-overview.json',
    'whatsapp-onprem-node.json': import '../../dashboards/whatsapp-onprem-node.json',
  },
}
