// The dashboards of dashboards/ checked against Grafana's own dashboard types, from the
// @grafana/schema package (the TypeScript form of Grafana's dashboard schema).
//
// Two checks use the types below:
// - `tsc -p tests/dashboards` compiles this file, which imports each dashboard JSON and
//   assigns it to Loose<Dashboard>. A JSON import's strings are widened to `string`, so
//   enum and literal fields can only be checked as strings here; the shape, the required
//   fields and the type of every value are checked.
// - `node tests/dashboards/check.mjs` (after its own rules) writes each dashboard as a
//   TypeScript constant, `as const satisfies Strict<StrictDashboard>`, and compiles that:
//   every enum value, every literal, every unknown key and each panel's options and field
//   config against its panel plugin's own types (stat, table, timeseries, state-timeline).
import type {
  DataSourceRef,
  Dashboard,
  FieldColor,
  FieldConfig,
  LineStyle,
  MatcherConfig,
  Panel,
  RowPanel,
  TableCellOptions,
  ThresholdsConfig,
  ValueMapping,
} from '@grafana/schema';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as StateTimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

import exporter from '../../dashboards/whatsapp-exporter.json';
import fleet from '../../dashboards/whatsapp-fleet-overview.json';
import onpremNode from '../../dashboards/whatsapp-onprem-node.json';

/** A type as a JSON import can meet it: enums and literal unions widened to string or number. */
export type Loose<T> = T extends string
  ? string
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T extends ReadonlyArray<infer U>
        ? Array<Loose<U>>
        : T extends object
          ? { [K in keyof T]: Loose<T[K]> }
          : T;

export const dashboards: Array<Loose<Dashboard>> = [fleet, onpremNode, exporter];

/** A type as an `as const` literal meets it: string enums as their values, read-only. */
export type Strict<T> = T extends string
  ? `${T}`
  : T extends number
    ? `${T}` extends `${infer N extends number}`
      ? N
      : T
    : T extends ReadonlyArray<infer U>
      ? ReadonlyArray<Strict<U>>
      : T extends object
        ? { readonly [K in keyof T]: Strict<T[K]> }
        : T;

/** A Prometheus query of a panel. */
export interface PromQuery {
  datasource: DataSourceRef;
  editorMode?: 'code' | 'builder';
  exemplar?: boolean;
  expr: string;
  format?: 'time_series' | 'table' | 'heatmap';
  hide?: boolean;
  instant?: boolean;
  interval?: string;
  legendFormat?: string;
  range?: boolean;
  refId: string;
}

/** A data link of a field (FieldConfig types them as unknown). */
export interface DataLink {
  targetBlank?: boolean;
  title: string;
  url: string;
}

/** The field override properties these dashboards use, each with the type of its value. */
export type OverrideProperty =
  | { id: 'color'; value: FieldColor }
  | { id: 'custom.cellOptions'; value: TableCellOptions }
  | { id: 'custom.fillOpacity'; value: number }
  | { id: 'custom.lineStyle'; value: LineStyle }
  | { id: 'custom.width'; value: number }
  | { id: 'decimals'; value: number }
  | { id: 'displayName'; value: string }
  | { id: 'links'; value: DataLink[] }
  | { id: 'mappings'; value: ValueMapping[] }
  | { id: 'thresholds'; value: ThresholdsConfig }
  | { id: 'unit'; value: string };

export interface Override {
  matcher: MatcherConfig & { id: 'byName' | 'byFrameRefID' | 'byRegexp'; options: string };
  properties: OverrideProperty[];
}

/** The transformations these dashboards use. */
export type Transformation =
  | { id: 'merge'; options: Record<string, never> }
  | {
      id: 'organize';
      options: {
        excludeByName: Record<string, boolean>;
        includeByName: Record<string, boolean>;
        indexByName: Record<string, number>;
        renameByName: Record<string, string>;
      };
    };

type PanelOf<Type extends string, Options, Custom> = Omit<
  Panel,
  'type' | 'options' | 'fieldConfig' | 'targets' | 'transformations' | 'datasource'
> & {
  datasource: DataSourceRef;
  fieldConfig: {
    defaults: Omit<FieldConfig, 'custom' | 'links'> & { custom?: Custom; links?: DataLink[] };
    overrides: Override[];
  };
  options: Options;
  targets: PromQuery[];
  transformations?: Transformation[];
  type: Type;
};

/** The panel types these dashboards use, each typed by its plugin's own options. */
export type KnownPanel =
  | PanelOf<'stat', Stat.Options, never>
  | PanelOf<'state-timeline', StateTimeline.Options, StateTimeline.FieldConfig>
  | PanelOf<'table', Table.Options, Table.FieldConfig>
  | PanelOf<'timeseries', TimeSeries.Options, TimeSeries.FieldConfig>;

export type KnownRow = Omit<RowPanel, 'panels'> & { panels: KnownPanel[] };

export type StrictDashboard = Omit<Dashboard, 'panels'> & { panels: Array<KnownPanel | KnownRow> };
