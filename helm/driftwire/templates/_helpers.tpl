{{/*
Chart name, truncated to the 63 characters DNS labels allow.
*/}}
{{- define "driftwire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: release name, plus the chart name unless the release name contains it.
*/}}
{{- define "driftwire.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "driftwire.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "driftwire.labels" -}}
helm.sh/chart: {{ include "driftwire.chart" . }}
{{ include "driftwire.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftwire
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: stable across upgrades, never add to them.
*/}}
{{- define "driftwire.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "driftwire.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "driftwire.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "driftwire.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
Name of the ConfigMap holding the detector config.
*/}}
{{- define "driftwire.configMapName" -}}
{{- printf "%s-config" (include "driftwire.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Path the detector config is mounted at.
*/}}
{{- define "driftwire.configPath" -}}
/etc/driftwire/config.yaml
{{- end }}

{{/*
Refuse value combinations that cannot work. Included by the Deployment.
*/}}
{{- define "driftwire.validateValues" -}}
{{- if and .Values.keda.enabled .Values.autoscaling.enabled }}
{{- fail "keda.enabled and autoscaling.enabled are mutually exclusive: enable at most one autoscaler (KEDA scales on consumer lag, the HPA on CPU)" }}
{{- end }}
{{- if and .Values.kafka.sasl.enabled (not .Values.kafka.sasl.existingSecret) }}
{{- fail "kafka.sasl.enabled needs kafka.sasl.existingSecret: the name of a Secret holding the SASL username and password" }}
{{- end }}
{{- if and .Values.kafka.tls.enabled (not .Values.kafka.tls.caSecret) }}
{{- fail "kafka.tls.enabled needs kafka.tls.caSecret: the name of a Secret holding the CA certificate" }}
{{- end }}
{{- if not .Values.kafka.bootstrapServers }}
{{- fail "kafka.bootstrapServers is required" }}
{{- end }}
{{- end }}

{{/*
Whether pods join the consumer group as static members: staticMembership, or by default with a StatefulSet.
*/}}
{{- define "driftwire.staticMembership" -}}
{{- if kindIs "invalid" .Values.staticMembership }}
{{- eq .Values.workloadKind "StatefulSet" }}
{{- else }}
{{- .Values.staticMembership }}
{{- end }}
{{- end }}

{{/*
security.protocol of the Kafka clients: explicit, or derived from SASL and TLS.
*/}}
{{- define "driftwire.securityProtocol" -}}
{{- if .Values.kafka.securityProtocol }}
{{- .Values.kafka.securityProtocol }}
{{- else if and .Values.kafka.sasl.enabled .Values.kafka.tls.enabled }}
{{- "SASL_SSL" }}
{{- else if .Values.kafka.sasl.enabled }}
{{- "SASL_PLAINTEXT" }}
{{- else if .Values.kafka.tls.enabled }}
{{- "SSL" }}
{{- end }}
{{- end }}

{{/*
Topics whose consumer lag drives KEDA scaling.
*/}}
{{- define "driftwire.kedaTopics" -}}
{{- if .Values.keda.topics }}
{{- toJson .Values.keda.topics }}
{{- else }}
{{- toJson (list .Values.kafka.topics.predictions .Values.kafka.topics.features) }}
{{- end }}
{{- end }}
